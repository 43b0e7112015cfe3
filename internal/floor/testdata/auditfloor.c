// auditfloor: the floor of an audit method: receive the kernel's audit
// records and count them, nothing else (with a pid file prefix, also the
// least parsing that names a storm's execs: pid and exe= of the SYSCALL
// record, argc and a0 of the EXECVE record, joined by serial number).
// usage: auditfloor RULES GAP_US [PIDFILE_PREFIX NWORKERS]
//   RULES: a file of audit rules in the kernel's wire format (struct
//   audit_rule_data), each preceded by its length as a native uint32; they
//   are added at start and deleted at exit ("-" for none).
//   GAP_US > 0: after a receive that found records, drain the socket without
//   blocking, then sleep GAP_US once before reading again (proctrack's
//   Config.Audit.WakeupGap). Records are read with recvmmsg, up to 16 a
//   call, like the method.
// Like proctrack's audit method: it becomes the audit pid when no live
// process is (setting the backlog limit to 8192 when lower, the backlog
// wait time to 15000 when 0), else it reads the multicast group; it enables
// audit if it was off. Prints "ready" once set up; on SIGTERM it restores
// what it changed (rules, pid, enabled, backlog) and prints a RESULT line.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <linux/netlink.h>
#include <linux/audit.h>

#define MAXPID (1<<22)
#define BATCH 16
#define SLOT (16<<10)
static volatile sig_atomic_t stop;
static void onsig(int s){(void)s;stop=1;}
static int ctl; static unsigned seq;
static long nrec,nsyscall,nexecve,neoe,nother,nenobufs;
// per pid: 0 none, 1 exec named right, 2 right path wrong args, 3 wrong path
static unsigned char *state;
struct slot{unsigned serial;int pid;signed char exe,args;};
static struct slot slots[4096];

static int request(int type,const void *data,int len,void *reply,int rlen){
    if(len>8192)return -EINVAL;
    struct{struct nlmsghdr h;char d[8192];}__attribute__((aligned(NLMSG_ALIGNTO))) m;
    static char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
    memset(&m.h,0,sizeof m.h);
    m.h.nlmsg_len=NLMSG_LENGTH(len);m.h.nlmsg_type=type;m.h.nlmsg_flags=NLM_F_REQUEST|NLM_F_ACK;m.h.nlmsg_seq=++seq;
    memcpy(m.d,data,len);
    struct sockaddr_nl k={.nl_family=AF_NETLINK};
    if(sendto(ctl,&m,m.h.nlmsg_len,0,(struct sockaddr*)&k,sizeof k)<0)return -errno;
    for(;;){ // answers come with records when this socket is the audit pid's
        ssize_t n=recv(ctl,buf,sizeof buf,0);
        if(n<0){if(errno==EINTR||errno==ENOBUFS)continue;return -errno;}
        struct nlmsghdr*h=(struct nlmsghdr*)buf;
        if(h->nlmsg_seq!=seq)continue;
        if(h->nlmsg_type==type&&reply){memcpy(reply,NLMSG_DATA(h),rlen);continue;}
        if(h->nlmsg_type==NLMSG_ERROR)return((struct nlmsgerr*)NLMSG_DATA(h))->error;
    }
}
static int setstatus(unsigned mask,unsigned enabled,unsigned pid,unsigned limit,unsigned wait){
    struct audit_status s={0};
    s.mask=mask;s.enabled=enabled;s.pid=pid;s.backlog_limit=limit;s.backlog_wait_time=wait;
    return request(AUDIT_SET,&s,sizeof s,NULL,0);
}

// field returns the value after " key=" in rec (NULL if absent).
static const char*field(const char*rec,const char*key){
    const char*p=strstr(rec,key); return p?p+strlen(key):NULL;
}
static void mark(struct slot*s){
    if(s->exe<0||s->args<0||s->pid<=0||s->pid>=MAXPID)return;
    if(state[s->pid]==0)state[s->pid]=!s->exe?3:s->args?1:2;
}
static void name(int type,char*rec){
    const char*p=strchr(rec,':'); if(!p)return;
    unsigned serial=strtoul(p+1,NULL,10); struct slot*s=&slots[serial&4095];
    if(s->serial!=serial){s->serial=serial;s->pid=0;s->exe=s->args=-1;}
    if(type==AUDIT_SYSCALL){
        const char*sc=field(rec," syscall="),*pid=field(rec," pid="),*exe=field(rec," exe=\"");
        if(!sc||!pid||!exe)return;
        int nr=atoi(sc); if(nr!=59&&nr!=322)return; // execve, execveat (x86_64)
        s->pid=atoi(pid);
        s->exe=!strncmp(exe,"/usr/bin/true\"",14)||!strncmp(exe,"/bin/true\"",10);
    } else s->args=strstr(rec," argc=1 a0=\"/bin/true\"")!=NULL;
    mark(s);
}
static void handle(char*buf,ssize_t n,int naming){
    struct nlmsghdr*h=(struct nlmsghdr*)buf;
    if(n<(ssize_t)NLMSG_HDRLEN)return;
    int t=h->nlmsg_type;
    if(t<AUDIT_FIRST_USER_MSG||t>AUDIT_LAST_USER_MSG2)return; // not a record
    nrec++;
    switch(t){
    case AUDIT_SYSCALL:nsyscall++;break; case AUDIT_EXECVE:nexecve++;break;
    case AUDIT_EOE:neoe++;break; default:nother++;}
    if(naming&&(t==AUDIT_SYSCALL||t==AUDIT_EXECVE)){buf[n]=0;name(t,buf+NLMSG_HDRLEN);}
}

int main(int argc,char**argv){
    if(argc<3){fprintf(stderr,"usage: auditfloor RULES GAP_US [PIDFILE_PREFIX NWORKERS]\n");return 2;}
    long gap=atol(argv[2]); const char*pref=argc>4?argv[3]:NULL; int nw=argc>4?atoi(argv[4]):0;
    state=calloc(MAXPID,1);
    // the rules
    static char rules[1<<20]; static long added[4096]; long rl=0; int nrules=0;
    if(strcmp(argv[1],"-")){
        FILE*f=fopen(argv[1],"r"); if(!f){perror(argv[1]);return 1;}
        rl=fread(rules,1,sizeof rules,f); fclose(f);
    }
    ctl=socket(AF_NETLINK,SOCK_RAW|SOCK_CLOEXEC,NETLINK_AUDIT);
    if(ctl<0){perror("socket");return 1;}
    int rb=8<<20; setsockopt(ctl,SOL_SOCKET,SO_RCVBUFFORCE,&rb,sizeof rb);
    struct audit_status before={0};
    int err=request(AUDIT_GET,NULL,0,&before,sizeof before);
    if(err){fprintf(stderr,"AUDIT_GET: %s\n",strerror(-err));return 1;}
    int multicast=before.pid!=0&&(kill(before.pid,0)==0||errno==EPERM);
    int sk=ctl,setpid=0,setlimit=0,setwait=0,setenabled=0;
    if(multicast){
        sk=socket(AF_NETLINK,SOCK_RAW|SOCK_CLOEXEC,NETLINK_AUDIT);
        struct sockaddr_nl sa={.nl_family=AF_NETLINK,.nl_groups=1<<(AUDIT_NLGRP_READLOG-1)};
        if(sk<0||bind(sk,(struct sockaddr*)&sa,sizeof sa)<0){perror("multicast");return 1;}
        setsockopt(sk,SOL_SOCKET,SO_RCVBUFFORCE,&rb,sizeof rb);
    } else {
        if((err=setstatus(AUDIT_STATUS_PID,0,getpid(),0,0))){fprintf(stderr,"set pid: %s\n",strerror(-err));return 1;}
        setpid=1;
        if(before.backlog_limit!=0&&before.backlog_limit<8192){
            if(!setstatus(AUDIT_STATUS_BACKLOG_LIMIT,0,0,8192,0))setlimit=1;}
        if(before.backlog_wait_time==0&&(before.feature_bitmap&AUDIT_FEATURE_BITMAP_BACKLOG_WAIT_TIME)){
            if(!setstatus(AUDIT_STATUS_BACKLOG_WAIT_TIME,0,0,0,15000))setwait=1;}
    }
    for(long o=0;o+4<=rl&&nrules<4096;){
        unsigned len; memcpy(&len,rules+o,4); o+=4;
        if(o+len>rl){fprintf(stderr,"bad rules file\n");break;}
        // a rule the kernel refuses (a b32 one without compat) is skipped
        if((err=request(AUDIT_ADD_RULE,rules+o,len,NULL,0)))fprintf(stderr,"add rule: %s\n",strerror(-err));
        else added[nrules++]=o-4;
        o+=len;
    }
    if(before.enabled==0){if(!setstatus(AUDIT_STATUS_ENABLED,1,0,0,0))setenabled=1;}
    struct sigaction act={0};act.sa_handler=onsig;sigaction(SIGTERM,&act,NULL);sigaction(SIGINT,&act,NULL);
    printf("ready multicast=%d rules=%d\n",multicast,nrules);fflush(stdout);

    // up to BATCH records a system call, as the method reads them
    static char bufs[BATCH][SLOT] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct mmsghdr hs[BATCH]; struct iovec iov[BATCH];
    for(int i=0;i<BATCH;i++){iov[i].iov_base=bufs[i];iov[i].iov_len=SLOT-1;
        memset(&hs[i],0,sizeof hs[i]);hs[i].msg_hdr.msg_iov=&iov[i];hs[i].msg_hdr.msg_iovlen=1;}
    struct timespec ts={0,gap*1000};
    int got=0,slept=0;
    while(!stop){
        int nb=gap>0&&(got||slept);
        int n=recvmmsg(sk,hs,BATCH,nb?MSG_DONTWAIT:MSG_WAITFORONE,NULL);
        if(n>=0){
            for(int i=0;i<n;i++)handle(bufs[i],hs[i].msg_len,pref!=NULL);
            got=1;
            continue;
        }
        if(nb&&errno==EAGAIN){if(got)nanosleep(&ts,NULL);slept=got;got=0;continue;}
        if(errno==ENOBUFS){nenobufs++;continue;}
        if(errno==EINTR)continue;
        perror("recvmmsg");break;
    }
    struct rusage ru;getrusage(RUSAGE_SELF,&ru);
    double cpu=ru.ru_utime.tv_sec+ru.ru_stime.tv_sec+(ru.ru_utime.tv_usec+ru.ru_stime.tv_usec)/1e6;

    // restore what was changed
    int rerr=0;
    for(int i=0;i<nrules;i++){
        unsigned len; memcpy(&len,rules+added[i],4);
        if(request(AUDIT_DEL_RULE,rules+added[i]+4,len,NULL,0))rerr++;
    }
    if(setenabled&&setstatus(AUDIT_STATUS_ENABLED,before.enabled,0,0,0))rerr++;
    if(setpid&&setstatus(AUDIT_STATUS_PID,0,0,0,0))rerr++;
    if(setlimit&&setstatus(AUDIT_STATUS_BACKLOG_LIMIT,0,0,before.backlog_limit,0))rerr++;
    if(setwait&&setstatus(AUDIT_STATUS_BACKLOG_WAIT_TIME,0,0,0,before.backlog_wait_time))rerr++;

    long total=0,cnt[4]={0};
    for(int w=0;pref&&w<nw;w++){
        char fn[4096];snprintf(fn,sizeof fn,"%s.%d",pref,w);FILE*f=fopen(fn,"r");if(!f)continue;
        int p; while(fscanf(f,"%d",&p)==1){ if(p<=0||p>=MAXPID)continue; total++; cnt[state[p]]++; }
        fclose(f);
    }
    printf("RESULT storm=%ld exec_reported=%ld named_right=%ld right_path_wrong_args=%ld wrong_path=%ld records=%ld syscall=%ld execve=%ld eoe=%ld other=%ld lost_enobufs=%ld multicast=%d rules=%d restore_errors=%d cpu=%.3f\n",
        total,total-cnt[0],cnt[1],cnt[2],cnt[3],nrec,nsyscall,nexecve,neoe,nother,nenobufs,multicast,nrules,rerr,cpu);
    return rerr?1:0;
}
